# .deb packages (CPack DEB) for amd64, arm64 and armhf: the binaries, the systemd unit,
# sysusers and tmpfiles entries, and the default configuration as a conffile.
#   cmake --build --preset release && cpack --config build/release/CPackConfig.cmake
# scripts/package.sh does this for every architecture the machine can build.
include(GNUInstallDirs)
install(FILES systemd/edgeferry.service DESTINATION lib/systemd/system)
install(FILES systemd/edgeferry.sysusers DESTINATION lib/sysusers.d RENAME edgeferry.conf)
install(FILES systemd/edgeferry.tmpfiles DESTINATION lib/tmpfiles.d RENAME edgeferry.conf)
install(FILES examples/edgeferry.toml DESTINATION /etc/edgeferry)
install(FILES README.md docs/configuration.md docs/operations.md docs/envelope.md docs/performance.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES examples/edgeferry.toml examples/demo.toml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# Debian's architecture names.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(EDGEFERRY_DEB_ARCH arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^arm")
  set(EDGEFERRY_DEB_ARCH armhf)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64)$")
  set(EDGEFERRY_DEB_ARCH amd64)
else()
  set(EDGEFERRY_DEB_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME edgeferry)
set(CPACK_PACKAGE_VENDOR "edgeferry maintainers")
set(CPACK_PACKAGE_CONTACT "edgeferry maintainers <maintainers@users.noreply.b-seed-3efe8ed2.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "durable sensor data forwarding for edge gateways")
set(CPACK_PACKAGE_DESCRIPTION "edgeferry reads sensor streams (MQTT, serial ports) on an edge gateway,
keeps every record in a compressed SQLite buffer that survives reboots, power cuts
and days offline, and forwards it to MQTT brokers, HTTP endpoints, Kinesis or S3
when the link allows, with at-least-once delivery and a dead letter queue.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${EDGEFERRY_DEB_ARCH})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/edgeferry/edgeferry")
# Library dependencies from dpkg-shlibdeps (it reads the target's libraries through multiarch).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd (>= 247)")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mosquitto")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
    ${PROJECT_SOURCE_DIR}/packaging/debian/prerm ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
