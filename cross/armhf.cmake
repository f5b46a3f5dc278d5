# Toolchain for Debian armhf (arm-linux-gnueabihf: 32-bit Raspberry Pi OS, older ARM
# boards). Used by the "armhf" preset.
set(CMAKE_SYSTEM_PROCESSOR arm)
set(EDGEFERRY_TRIPLET arm-linux-gnueabihf)
set(EDGEFERRY_QEMU /usr/bin/qemu-arm-static)
include(${CMAKE_CURRENT_LIST_DIR}/debian-multiarch.cmake)
