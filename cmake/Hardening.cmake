# Debian's architecture name of the target (amd64, arm64, armhf): the package name and
# dpkg-buildflags' DEB_HOST_ARCH for cross builds.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
  set(EDGEFERRY_DEB_ARCH arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^arm")
  set(EDGEFERRY_DEB_ARCH armhf)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64)$")
  set(EDGEFERRY_DEB_ARCH amd64)
else()
  set(EDGEFERRY_DEB_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

# Hardening of the optimised builds that become packages (release, arm64, armhf presets),
# with the flags Debian builds its own packages with: dpkg-buildflags for the target
# architecture, all hardening features (stack protector, fortify, format, relro, bindnow,
# PIE). Not for Debug, sanitizer or fuzz builds: _FORTIFY_SOURCE needs optimisation and
# the sanitizers bring their own checks.
set(_harden_default OFF)
if(CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo|MinSizeRel)$"
   AND NOT EDGEFERRY_SANITIZE AND NOT EDGEFERRY_TSAN AND NOT EDGEFERRY_FUZZ)
  set(_harden_default ON)
endif()
option(EDGEFERRY_HARDEN "Hardening flags from dpkg-buildflags (default: optimised builds)" ${_harden_default})

if(EDGEFERRY_HARDEN)
  find_program(EDGEFERRY_DPKG_BUILDFLAGS dpkg-buildflags)
  if(EDGEFERRY_DPKG_BUILDFLAGS)
    # The build type owns -O and -g. reproducible=-all: its -ffile-prefix-map names the
    # directory cmake ran in, which would give each checkout its own ccache entries.
    # DEB_*FLAGS_APPEND and the like in the environment still apply, as in a Debian build.
    foreach(kind CXXFLAGS CPPFLAGS LDFLAGS)
      execute_process(
        COMMAND ${CMAKE_COMMAND} -E env DEB_HOST_ARCH=${EDGEFERRY_DEB_ARCH}
                "DEB_BUILD_MAINT_OPTIONS=hardening=+all reproducible=-all"
                ${EDGEFERRY_DPKG_BUILDFLAGS} --get ${kind}
        OUTPUT_VARIABLE _flags OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
      separate_arguments(_flags UNIX_COMMAND "${_flags}")
      list(FILTER _flags EXCLUDE REGEX "^(-g[0-9]*|-O[0-9sgz]?)$")
      set(_harden_${kind} ${_flags})
    endforeach()
  else()
    # Not a Debian system (a Yocto recipe, say): the same features by hand.
    set(_harden_CXXFLAGS -fstack-protector-strong -Wformat -Werror=format-security)
    set(_harden_CPPFLAGS -D_FORTIFY_SOURCE=2)
    set(_harden_LDFLAGS -Wl,-z,relro -Wl,-z,now)
  endif()
  # PIE is built into Debian's gcc (dpkg-buildflags adds nothing for it); say so anyway,
  # for toolchains without that default.
  target_compile_options(edgeferry_flags INTERFACE ${_harden_CPPFLAGS} ${_harden_CXXFLAGS} -fPIE)
  target_link_options(edgeferry_flags INTERFACE ${_harden_LDFLAGS} -pie)
  list(JOIN _harden_CXXFLAGS " " _cxx)
  list(JOIN _harden_LDFLAGS " " _ld)
  message(STATUS "edgeferry: hardening (${EDGEFERRY_DEB_ARCH}): ${_harden_CPPFLAGS} ${_cxx} -fPIE; link: ${_ld} -pie")
endif()
