"""Cut a failing scenario down while it keeps failing.

`shrink(lines, fails)` first removes lines (delta debugging), then simplifies the lines that are
left (drop a callback's nested op, then the callback itself, `fin F X raise` -> `fin F X`), and
removes lines once more. `fails(lines)` must answer True for the input; it is called at most
`budget` times.
"""


class Budget:
    def __init__(self, fails, budget):
        self.fails = fails
        self.left = budget

    def __call__(self, lines):
        if self.left <= 0:
            return False
        self.left -= 1
        return self.fails(lines)


def ddmin(lines, fails):
    """Zeller's delta debugging: remove chunks of lines, finer and finer, while it fails."""
    n = 2
    while len(lines) >= 2:
        chunk = (len(lines) + n - 1) // n
        for start in range(0, len(lines), chunk):
            rest = lines[:start] + lines[start + chunk:]
            if rest and fails(rest):
                lines = rest
                n = max(n - 1, 2)
                break
        else:
            if chunk == 1:
                break
            n = min(n * 2, len(lines))
    return lines


def simpler_variants(line):
    """Simpler forms of one line, simplest first."""
    tokens = line.split()
    variants = []
    if "cb" in tokens:
        at = tokens.index("cb")
        variants.append(" ".join(tokens[:at]))  # no callback at all
        if at + 1 < len(tokens):
            variants.append(" ".join(tokens[:at + 1]))  # callback without its nested op
            inner = " ".join(tokens[at + 1:])
            variants += [" ".join(tokens[:at + 1]) + " " + v for v in simpler_variants(inner)]
    if tokens[0] == "fin" and tokens[-1] == "raise":
        variants.append(" ".join(tokens[:-1]))
    return variants


def simplify(lines, fails):
    changed = True
    while changed:
        changed = False
        for i, line in enumerate(lines):
            for variant in simpler_variants(line):
                candidate = lines[:i] + [variant] + lines[i + 1:]
                if fails(candidate):
                    lines, changed = candidate, True
                    break
    return lines


def shrink(lines, fails, budget=600):
    fails = Budget(fails, budget)
    lines = ddmin(list(lines), fails)
    lines = simplify(lines, fails)
    return ddmin(lines, fails)
