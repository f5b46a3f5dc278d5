# Toolchain for Debian arm64 (aarch64-linux-gnu) on a Debian 12 amd64 host, using multiarch
# (cross/install-cross-deps.sh arm64): the target's libraries live in
# /usr/lib/aarch64-linux-gnu, so no sysroot is needed. Used by the "arm64" preset.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(PKG_CONFIG_EXECUTABLE /usr/bin/aarch64-linux-gnu-pkg-config CACHE FILEPATH "pkg-config for arm64")
# ctest runs the target's test binaries through qemu-user; so do the tests that start
# the edgeferry executable (tests/CMakeLists.txt makes wrappers from this).
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/qemu-aarch64-static)
# Programs (protoc-like tools, pkg-config) come from the host; libraries and CMake
# package configs resolve into /usr/lib/<triplet> through CMAKE_LIBRARY_ARCHITECTURE.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
