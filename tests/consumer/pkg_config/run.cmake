# Builds and runs ../main.cpp with nothing but the compiler and
# `pkg-config --cflags --libs weakref`, against the weakref.pc under PKG_CONFIG_DIR.
#   cmake -DPKG_CONFIG_DIR=<prefix>/share/pkgconfig -DCXX=<compiler> -DWORK_DIR=<scratch>
#         [-DEXPECT_VERSION=<version>] -P run.cmake
cmake_minimum_required(VERSION 3.21)
foreach(var PKG_CONFIG_DIR CXX WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "pass -D${var}=...")
  endif()
endforeach()
find_program(PKG_CONFIG pkg-config REQUIRED)
if(NOT EXISTS ${PKG_CONFIG_DIR}/weakref.pc)
  message(FATAL_ERROR "no weakref.pc in ${PKG_CONFIG_DIR}")
endif()

# Only this directory: a weakref.pc installed system-wide must not answer instead.
set(ENV{PKG_CONFIG_PATH} ${PKG_CONFIG_DIR})
set(ENV{PKG_CONFIG_LIBDIR} ${PKG_CONFIG_DIR})

function(pkg_config out)
  execute_process(COMMAND ${PKG_CONFIG} ${ARGN} weakref OUTPUT_VARIABLE result
                  RESULT_VARIABLE status OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "pkg-config ${ARGN} weakref failed (${status})")
  endif()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

pkg_config(version --modversion)
if(DEFINED EXPECT_VERSION AND NOT version STREQUAL EXPECT_VERSION)
  message(FATAL_ERROR "weakref.pc says version ${version}, expected ${EXPECT_VERSION}")
endif()
pkg_config(flags --cflags --libs)
message(STATUS "pkg-config --cflags --libs weakref: ${flags}")
separate_arguments(flags UNIX_COMMAND "${flags}")
foreach(wanted -std=c++20 -pthread)
  if(NOT wanted IN_LIST flags)
    message(FATAL_ERROR "missing ${wanted} in: ${flags}")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
# No -I of our own, no CMake: pkg-config must supply the include path and the flags.
execute_process(COMMAND ${CXX} ${CMAKE_CURRENT_LIST_DIR}/../main.cpp ${flags}
                        -o ${WORK_DIR}/consumer
                RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "compiling with pkg-config's flags failed")
endif()
execute_process(COMMAND ${WORK_DIR}/consumer RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "the consumer built with pkg-config's flags exited with ${status}")
endif()
