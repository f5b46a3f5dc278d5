# Shared by arm64.cmake and armhf.cmake: a Debian multiarch cross toolchain for
# EDGEFERRY_TRIPLET, with target binaries run through EDGEFERRY_QEMU. The target's
# libraries live in /usr/lib/<triplet> (cross/install-cross-deps.sh), so no sysroot.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${EDGEFERRY_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${EDGEFERRY_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${EDGEFERRY_TRIPLET})
set(PKG_CONFIG_EXECUTABLE /usr/bin/${EDGEFERRY_TRIPLET}-pkg-config CACHE FILEPATH "pkg-config for the target")
# ctest runs the target's test binaries through qemu-user; so do the tests that start
# the edgeferry executable (tests/CMakeLists.txt makes wrappers from this).
set(CMAKE_CROSSCOMPILING_EMULATOR ${EDGEFERRY_QEMU})
# Programs (pkg-config and the like) come from the host; libraries and CMake package
# configs resolve into /usr/lib/<triplet> through CMAKE_LIBRARY_ARCHITECTURE.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
