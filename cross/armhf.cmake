# Toolchain for Debian armhf (arm-linux-gnueabihf) on a Debian 12 amd64 host, using multiarch
# (cross/install-cross-deps.sh armhf): the target's libraries live in
# /usr/lib/arm-linux-gnueabihf, so no sysroot is needed. Used by the "armhf" preset.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
set(PKG_CONFIG_EXECUTABLE /usr/bin/arm-linux-gnueabihf-pkg-config CACHE FILEPATH "pkg-config for armhf")
# ctest runs the target's test binaries through qemu-user; so do the tests that start
# the edgeferry executable (tests/CMakeLists.txt makes wrappers from this).
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/qemu-arm-static)
# Programs (protoc-like tools, pkg-config) come from the host; libraries and CMake
# package configs resolve into /usr/lib/<triplet> through CMAKE_LIBRARY_ARCHITECTURE.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
