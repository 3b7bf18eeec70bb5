# weakref_set_warnings(<target>): warnings for weakref's own tests/benchmarks/examples.
# Never applied to the weakref INTERFACE target, so consumers keep their own flags.
function(weakref_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic
                           $<$<BOOL:${WEAKREF_WERROR}>:-Werror>)
    # GCC 12 at -O3 reports `"literal" + std::string` in libstdc++ itself as -Wrestrict
    # (GCC bug 105329, a false positive); silence just that one.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE -Wno-restrict)
    endif()
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${WEAKREF_WERROR}>:/WX>)
  endif()
endfunction()

# weakref_add_executable(<name> <source> [<library>...]): one of weakref's own programs (a test,
# benchmark, example or tool), linked to the library, with the warnings above.
function(weakref_add_executable name source)
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE weakref::weakref ${ARGN})
  weakref_set_warnings(${name})
endfunction()
