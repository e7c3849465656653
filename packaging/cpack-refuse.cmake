# Included by cpack (CPACK_PROJECT_CONFIG_FILE) only in build trees configured with sanitizers or
# fuzzing instrumentation: such binaries must never be packaged.
message(FATAL_ERROR "collectord: this build tree is instrumented (COLLECTORD_SANITIZE or "
                    "COLLECTORD_FUZZ); build the package from a normal build: "
                    "cmake -S . -B build && cmake --build build && (cd build && cpack -G DEB)")
