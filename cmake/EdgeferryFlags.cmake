# One INTERFACE target carries the warning and sanitizer flags; every edgeferry target
# links it, third-party headers are included as SYSTEM and stay out of -Werror.
add_library(edgeferry_flags INTERFACE)
target_compile_options(edgeferry_flags INTERFACE -Wall -Wextra -Werror -Wshadow
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align)
# Not -Wnull-dereference: at -O2 it fires inside inlined Boost.Asio code, not ours;
# the ASan/UBSan build catches real null dereferences.
if(EDGEFERRY_SANITIZE)
  target_compile_options(edgeferry_flags INTERFACE -fsanitize=address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(edgeferry_flags INTERFACE -fsanitize=address,undefined)
endif()
if(EDGEFERRY_TSAN)
  # -Wno-tsan: g++ 12 warns that TSan does not model the std::atomic_thread_fence in
  # Boost.Asio's fenced blocks (inlined into our objects). An ignored fence can only add
  # false reports (against Asio, for a suppression with its reason), never hide ours.
  target_compile_options(edgeferry_flags INTERFACE -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
  target_link_options(edgeferry_flags INTERFACE -fsanitize=thread)
endif()
if(EDGEFERRY_THREAD_SAFETY)
  target_compile_options(edgeferry_flags INTERFACE -Wthread-safety -Wthread-safety-beta)
endif()
if(EDGEFERRY_FUZZ)
  # Every library is instrumented for coverage; only fuzz/ links the libFuzzer main.
  target_compile_options(edgeferry_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(edgeferry_flags INTERFACE -fsanitize=address,undefined)
endif()
# 32-bit ARM: g++ notes that GCC 7.1 changed how some arguments are passed; every part
# of the image is built by g++ 12, so the note is noise, not a problem.
# Large files on 32-bit ARM: a buffer or outbox past 2 GiB must not make stat() fail.
# (time_t stays 32-bit there: Debian 12's armhf libraries are built that way.)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^arm")
  target_compile_options(edgeferry_flags INTERFACE -Wno-psabi)
  target_compile_definitions(edgeferry_flags INTERFACE _FILE_OFFSET_BITS=64)
endif()
# Rebuilds (several presets, cross builds, CI reruns on the same machine) reuse objects.
find_program(EDGEFERRY_CCACHE ccache)
if(EDGEFERRY_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${EDGEFERRY_CCACHE})
endif()
