# Libraries the demo (examples/demo/pool.c: a pool of SQLite connections)
# and the tests link besides tern. Included by CMakeLists.txt after the
# tern libraries are defined, so the core library never depends on them.
# scripts/deps.sh installs libsqlite3-dev.
find_path(SQLITE3_INCLUDE_DIR sqlite3.h REQUIRED)
find_library(SQLITE3_LIB sqlite3 REQUIRED)
set(TERN_EXTRA_LIBS ${SQLITE3_LIB})
# sqlite3.h is on the default path on Debian/Ubuntu; this covers other
# layouts and applies only to targets defined after this point (examples
# and tests, not tern_objs)
include_directories(${SQLITE3_INCLUDE_DIR})
