# .deb packages (CPack DEB) for amd64, arm64 and armhf: the binaries with their man pages
# and bash completion, the systemd unit, sysusers and tmpfiles entries, the default
# configuration as a conffile, and the documentation with the Debian copyright file and
# changelog in /usr/share/doc/edgeferry.
#   cmake --build --preset release && cpack --config build/release/CPackConfig.cmake
# scripts/package.sh does this for every architecture the machine can build;
# scripts/check-deb.sh runs lintian on the result.
include(GNUInstallDirs)
install(FILES systemd/edgeferry.service DESTINATION lib/systemd/system)
install(FILES systemd/edgeferry.sysusers DESTINATION lib/sysusers.d RENAME edgeferry.conf)
install(FILES systemd/edgeferry.tmpfiles DESTINATION lib/tmpfiles.d RENAME edgeferry.conf)
install(FILES examples/edgeferry.toml DESTINATION /etc/edgeferry)
# The documents keep the repository's layout, so their references to each other
# (docs/configuration.md, buffer/FORMAT.md) resolve under /usr/share/doc/edgeferry too.
install(FILES README.md NOTICE packaging/debian/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES docs/architecture.md docs/configuration.md docs/envelope.md docs/fleet.md
        docs/operations.md docs/performance.md docs/security.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
install(FILES buffer/FORMAT.md DESTINATION ${CMAKE_INSTALL_DOCDIR}/buffer)
install(FILES examples/edgeferry.toml examples/demo.toml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES packaging/prometheus/edgeferry-alerts.yml packaging/prometheus/edgeferry-alerts.test.yml
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/prometheus)

# Debian's changelog, compressed as Debian policy asks (gzip -9n: no name or time stamp).
set(EDGEFERRY_DEB_CHANGELOG ${PROJECT_BINARY_DIR}/packaging/changelog.Debian.gz)
add_custom_command(OUTPUT ${EDGEFERRY_DEB_CHANGELOG}
  COMMAND sh -c "gzip -9n -c \"$0\" > \"$1\"" ${PROJECT_SOURCE_DIR}/packaging/debian/changelog
          ${EDGEFERRY_DEB_CHANGELOG}
  DEPENDS ${PROJECT_SOURCE_DIR}/packaging/debian/changelog VERBATIM)
add_custom_target(edgeferry_deb_changelog ALL DEPENDS ${EDGEFERRY_DEB_CHANGELOG})
install(FILES ${EDGEFERRY_DEB_CHANGELOG} DESTINATION ${CMAKE_INSTALL_DOCDIR})
# lintian reads a binary package's overrides (each with its reason) from the package.
install(FILES packaging/debian/lintian-overrides DESTINATION share/lintian/overrides RENAME edgeferry)

# Man pages (help2man) and bash completions from each program's --help, at build time,
# so they follow the CLI definitions. Cross builds run the programs through qemu-user.
find_program(EDGEFERRY_HELP2MAN help2man)
if(CMAKE_CROSSCOMPILING AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
  message(WARNING "edgeferry: cross build without an emulator: no man pages or bash completion")
elseif(NOT EDGEFERRY_HELP2MAN)
  message(WARNING "edgeferry: help2man not found (scripts/install-deps.sh): no man pages or bash completion")
else()
  set(_cli_docs ${PROJECT_BINARY_DIR}/packaging/cli)
  set(_cli_summary_edgeferry "durable sensor data forwarding for edge gateways")
  set(_cli_summary_edgeferry-replay "publish recorded sensor data over MQTT or a serial device")
  set(_cli_outputs)
  foreach(exe edgeferry edgeferry-replay)
    add_custom_command(OUTPUT ${_cli_docs}/${exe}.1.gz ${_cli_docs}/${exe}.bash-completion
      COMMAND ${PROJECT_SOURCE_DIR}/packaging/cli-docs.sh ${_cli_docs} ${exe} "${_cli_summary_${exe}}"
              ${PROJECT_VERSION} ${PROJECT_SOURCE_DIR}/packaging/man/${exe}.h2m
              $<TARGET_FILE:${exe}> ${CMAKE_CROSSCOMPILING_EMULATOR}
      DEPENDS ${exe} ${PROJECT_SOURCE_DIR}/packaging/cli-docs.sh ${PROJECT_SOURCE_DIR}/packaging/man/${exe}.h2m
      VERBATIM)
    list(APPEND _cli_outputs ${_cli_docs}/${exe}.1.gz ${_cli_docs}/${exe}.bash-completion)
    install(FILES ${_cli_docs}/${exe}.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
    install(FILES ${_cli_docs}/${exe}.bash-completion DESTINATION share/bash-completion/completions
            RENAME ${exe})
  endforeach()
  add_custom_target(edgeferry_cli_docs ALL DEPENDS ${_cli_outputs})
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME edgeferry)
set(CPACK_PACKAGE_VENDOR "edgeferry maintainers")
set(CPACK_PACKAGE_CONTACT "edgeferry maintainers <maintainers@users.noreply.b-seed-3efe8ed2.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "durable sensor data forwarding for edge gateways")
# Debian wants the extended description's lines at most 80 characters.
set(CPACK_PACKAGE_DESCRIPTION "edgeferry reads sensor streams (MQTT, serial ports) on an edge gateway,
keeps every record in a compressed SQLite buffer that survives reboots,
power cuts and days offline, and forwards it to MQTT brokers, HTTP endpoints,
Kinesis or S3 when the link allows, with at-least-once delivery and a dead
letter queue.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Debian revision 1 of upstream ${PROJECT_VERSION}: edgeferry_0.1.0-1_amd64.deb, matching
# packaging/debian/changelog (keep the two in step).
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
file(STRINGS packaging/debian/changelog _changelog_top LIMIT_COUNT 1)
if(NOT _changelog_top MATCHES "^edgeferry \\(${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}\\) ")
  message(FATAL_ERROR "packaging/debian/changelog starts with '${_changelog_top}', "
                      "not version ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}")
endif()
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
