# Sanitizer and fuzzing builds (scripts/sanitize.sh, scripts/fuzz.sh).
#   TRAINSIM_SANITIZE=ON  every target under ASan + UBSan; undefined behaviour
#                         aborts (no recovery), so a test that hits it fails.
#   TRAINSIM_FUZZ=ON      (clang only) also libFuzzer coverage instrumentation
#                         in every library and the fuzz/ targets.
option(TRAINSIM_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(TRAINSIM_FUZZ "Build the libFuzzer targets in fuzz/ (clang only)" OFF)

if(TRAINSIM_FUZZ AND NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(WARNING "TRAINSIM_FUZZ needs clang (CMAKE_CXX_COMPILER=clang++); the fuzz targets are not built")
  set(TRAINSIM_FUZZ OFF)
endif()

if(TRAINSIM_SANITIZE OR TRAINSIM_FUZZ)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(TRAINSIM_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
