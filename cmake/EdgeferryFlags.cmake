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
