# weakref's packaging, included from the top-level CMakeLists.txt when WEAKREF_INSTALL is on:
# a pkg-config file, and CPack settings for a Debian package (`cpack -G DEB` in the build
# directory) of everything `cmake --install` installs.
#
# weakref is header-only, so nothing it installs depends on the architecture: the pkg-config
# file goes to ${CMAKE_INSTALL_DATADIR}/pkgconfig (pkg-config's arch-independent directory),
# as the CMake package files go to ${CMAKE_INSTALL_DATADIR}/cmake/weakref, and the package is
# "Architecture: all".

# --- pkg-config: weakref.pc ---
set(WEAKREF_PC_DIR ${CMAKE_INSTALL_DATADIR}/pkgconfig)
# The way from the .pc file's directory up to the prefix (${pcfiledir}-relative, relocatable).
file(RELATIVE_PATH WEAKREF_PC_TO_PREFIX /prefix/${WEAKREF_PC_DIR} /prefix)
string(REGEX REPLACE "/$" "" WEAKREF_PC_TO_PREFIX "${WEAKREF_PC_TO_PREFIX}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/weakref.pc.in ${PROJECT_BINARY_DIR}/weakref.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/weakref.pc DESTINATION ${WEAKREF_PC_DIR})

# --- CPack: a .deb of the headers, the CMake package files and weakref.pc ---
set(CPACK_PACKAGE_NAME weakref)
set(CPACK_PACKAGE_VENDOR "weakref maintainers")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Python's weakref module for C++20 objects owned by std::shared_ptr (header-only)")
set(CPACK_PACKAGE_DESCRIPTION
    "Weak references with death callbacks, proxies, weak bound methods, finalizers, weak\n\
containers and a get-or-create cache, for objects owned by a plain std::shared_ptr and made\n\
by weakref::make_shared. Header-only C++20; use it with find_package(weakref) and the\n\
weakref::weakref target, or with pkg-config --cflags weakref.")
set(CPACK_PACKAGE_CONTACT "weakref maintainers <maintainers@users.noreply.b-seed-dbd895d6.example>"
    CACHE STRING "Maintainer of the weakref packages (Debian: Maintainer)")
set(CPACK_RESOURCE_FILE_README ${PROJECT_SOURCE_DIR}/README.md)
set(CPACK_GENERATOR TGZ CACHE STRING "What plain `cpack` makes (`cpack -G DEB` for the .deb)")
set(CPACK_PACKAGE_FILE_NAME ${CPACK_PACKAGE_NAME}-${PROJECT_VERSION})
set(CPACK_PACKAGE_CHECKSUM SHA256)

# Debian: a -dev package (headers only), named and laid out as Debian names header packages.
set(CPACK_DEBIAN_PACKAGE_NAME libweakref-dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # libweakref-dev_0.1.0_all.deb
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "cmake (>= 3.21), pkg-config")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

include(CPack)
