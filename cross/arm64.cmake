# Toolchain for Debian arm64 (aarch64-linux-gnu: Raspberry Pi 3/4/5 with a 64-bit OS,
# most industrial ARM gateways). Used by the "arm64" preset.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(EDGEFERRY_TRIPLET aarch64-linux-gnu)
set(EDGEFERRY_QEMU /usr/bin/qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
