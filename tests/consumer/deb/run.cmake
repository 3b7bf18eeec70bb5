# Makes the Debian package of a configured weakref build tree (cpack -G DEB), checks its
# control fields, unpacks it with `dpkg -x` into a scratch root (not installed: no root
# needed), then builds and runs ../main.cpp against that root twice: with find_package
# (CMAKE_PREFIX_PATH=<root>/usr) and with pkg-config (<root>/usr/share/pkgconfig).
#   cmake -DBUILD_DIR=<weakref build> -DWORK_DIR=<scratch> -DCXX=<compiler> -DCPACK=<cpack>
#         -DGENERATOR=<generator> -DVERSION=<version> -P run.cmake
cmake_minimum_required(VERSION 3.21)
foreach(var BUILD_DIR WORK_DIR CXX CPACK GENERATOR VERSION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "pass -D${var}=...")
  endif()
endforeach()
find_program(DPKG_DEB dpkg-deb REQUIRED)
find_program(DPKG dpkg REQUIRED)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed (${status}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/package)
run(${CPACK} -G DEB --config ${BUILD_DIR}/CPackConfig.cmake
    -B ${WORK_DIR}/package)
file(GLOB debs ${WORK_DIR}/package/*.deb)
list(LENGTH debs count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "expected one .deb in ${WORK_DIR}/package, found: ${debs}")
endif()
set(deb ${debs})
message(STATUS "package: ${deb}")

# Control fields.
foreach(field_value "Package=libweakref-dev" "Architecture=all" "Version=${VERSION}")
  string(REPLACE "=" ";" pair ${field_value})
  list(GET pair 0 field)
  list(GET pair 1 expected)
  execute_process(COMMAND ${DPKG_DEB} -f ${deb} ${field} OUTPUT_VARIABLE value
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT value STREQUAL expected)
    message(FATAL_ERROR "${field}: '${value}', expected '${expected}'")
  endif()
endforeach()
foreach(field Maintainer Description)
  execute_process(COMMAND ${DPKG_DEB} -f ${deb} ${field} OUTPUT_VARIABLE value)
  if(value STREQUAL "")
    message(FATAL_ERROR "the package has no ${field}")
  endif()
endforeach()

# Contents: headers, CMake package files, pkg-config file; nothing arch-specific.
set(root ${WORK_DIR}/root)
run(${DPKG} -x ${deb} ${root})
foreach(file usr/include/weakref/weakref.hpp usr/share/cmake/weakref/weakrefConfig.cmake
             usr/share/cmake/weakref/weakrefConfigVersion.cmake usr/share/pkgconfig/weakref.pc)
  if(NOT EXISTS ${root}/${file})
    message(FATAL_ERROR "the package lacks /${file}")
  endif()
endforeach()
if(EXISTS ${root}/usr/lib)
  message(FATAL_ERROR "an Architecture: all package must not install into /usr/lib")
endif()

# find_package against the unpacked root.
run(${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/../find_package -B ${WORK_DIR}/find_package
    -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX}
    -DCMAKE_PREFIX_PATH=${root}/usr -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/find_package)
run(${WORK_DIR}/find_package/consumer)

# pkg-config against the unpacked root (the .pc must be relocatable for this to find headers).
run(${CMAKE_COMMAND} -DPKG_CONFIG_DIR=${root}/usr/share/pkgconfig -DCXX=${CXX}
    -DWORK_DIR=${WORK_DIR}/pkg_config -DEXPECT_VERSION=${VERSION}
    -P ${CMAKE_CURRENT_LIST_DIR}/../pkg_config/run.cmake)
