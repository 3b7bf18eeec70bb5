# weakref_set_warnings(<target>): warnings for weakref's own tests/benchmarks/examples.
# Never applied to the weakref INTERFACE target, so consumers keep their own flags.
function(weakref_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic
                           $<$<BOOL:${WEAKREF_WERROR}>:-Werror>)
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${WEAKREF_WERROR}>:/WX>)
  endif()
endfunction()
