# Unit tests: every tests/unit/**/test_*.c is one program; ctest runs it.
# Tests may #include the .c under test (h2o style) to reach static functions.
file(GLOB_RECURSE TERN_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${TERN_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  get_filename_component(dir ${src} DIRECTORY)
  get_filename_component(area ${dir} NAME)
  set(tname unit_${area}_${name})
  add_executable(${tname} ${src})
  target_include_directories(${tname} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR}/tests/unit)
  target_compile_options(${tname} PRIVATE ${TERN_WARNINGS} -Wno-missing-prototypes ${TERN_SAN_FLAGS} ${TERN_HARDEN_FLAGS})
  target_compile_definitions(${tname} PRIVATE _GNU_SOURCE)
  target_link_libraries(${tname} PRIVATE tern_static ${TERN_EXTRA_LIBS})
  add_test(NAME ${tname} COMMAND ${tname})
  set_tests_properties(${tname} PROPERTIES TIMEOUT 300 LABELS unit)
  if(area STREQUAL "rt")
    list(APPEND TERN_RT_UNIT_TESTS ${tname})
  endif()
endforeach()
# the runtime's unit tests alone (make tsan builds just these)
add_custom_target(tern_rt_unit_tests DEPENDS ${TERN_RT_UNIT_TESTS})

# Integration tests: Python drives the real demo server over real sockets.
find_program(PYTHON3 python3 REQUIRED)
file(GLOB TERN_INTEGRATION_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/test_*.py)
# A server with a route that overflows its stack: the demo must not have one.
add_executable(tern-test-overflow-server ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/overflow_server.c)
target_compile_options(tern-test-overflow-server PRIVATE ${TERN_WARNINGS} ${TERN_SAN_FLAGS} ${TERN_HARDEN_FLAGS})
target_compile_definitions(tern-test-overflow-server PRIVATE _GNU_SOURCE)
target_link_libraries(tern-test-overflow-server PRIVATE tern_static ${TERN_EXTRA_LIBS})
# The seed application's patterns (a static semaphore and pool shared by
# every worker, a task on another worker, a queued route): public API only.
add_executable(tern-test-seed-server ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/seed_server.c)
target_compile_options(tern-test-seed-server PRIVATE ${TERN_WARNINGS} ${TERN_SAN_FLAGS} ${TERN_HARDEN_FLAGS})
target_compile_definitions(tern-test-seed-server PRIVATE _GNU_SOURCE)
target_link_libraries(tern-test-seed-server PRIVATE tern_static ${TERN_EXTRA_LIBS})
# Middleware shapes the demo does not use (test_middleware.py finds it next to tern-demo).
add_executable(tern-test-mw-server ${CMAKE_CURRENT_SOURCE_DIR}/tests/integration/mw_server.c)
target_compile_options(tern-test-mw-server PRIVATE ${TERN_WARNINGS} ${TERN_SAN_FLAGS} ${TERN_HARDEN_FLAGS})
target_compile_definitions(tern-test-mw-server PRIVATE _GNU_SOURCE)
target_link_libraries(tern-test-mw-server PRIVATE tern_static ${TERN_EXTRA_LIBS})
foreach(py ${TERN_INTEGRATION_TESTS})
  get_filename_component(name ${py} NAME_WE)
  set(binary $<TARGET_FILE:tern-demo>)
  if(name STREQUAL "test_stack_overflow")
    set(binary $<TARGET_FILE:tern-test-overflow-server>)
  elseif(name STREQUAL "test_seed")
    set(binary $<TARGET_FILE:tern-test-seed-server>)
  endif()
  add_test(NAME integration_${name}
    COMMAND ${PYTHON3} ${py} --binary ${binary})
  set_tests_properties(integration_${name} PROPERTIES TIMEOUT 600 LABELS integration RUN_SERIAL TRUE
    SKIP_RETURN_CODE 77)
  # the demo refuses to serve as root unless told to; tests run as root in CI
  set_property(TEST integration_${name} APPEND PROPERTY ENVIRONMENT TERN_ALLOW_ROOT=1)
endforeach()

# README examples compile
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/tests/readme_examples.cmake)
  include(${CMAKE_CURRENT_SOURCE_DIR}/tests/readme_examples.cmake)
endif()

# Fuzz targets: libFuzzer needs clang; each runs briefly on its corpus.
if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  file(GLOB TERN_FUZZERS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
  set(TERN_FUZZ_SECONDS 20 CACHE STRING "seconds each fuzz target runs inside make test")
  find_library(HTTP_PARSER_LIB http_parser)
  foreach(src ${TERN_FUZZERS})
    get_filename_component(name ${src} NAME_WE)
    if(name STREQUAL "fuzz_diff_http_parser" AND NOT HTTP_PARSER_LIB)
      message(STATUS "libhttp-parser not found: skipping ${name}")
      continue()
    endif()
    add_executable(${name} ${src})
    if(name STREQUAL "fuzz_diff_http_parser")
      target_link_libraries(${name} PRIVATE ${HTTP_PARSER_LIB})
    endif()
    if(name STREQUAL "fuzz_static_parse" OR name STREQUAL "fuzz_h1")
      target_link_libraries(${name} PRIVATE ZLIB::ZLIB PkgConfig::BROTLIENC)
    endif()
    target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR}/include)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -g -O1)
    target_compile_definitions(${name} PRIVATE _GNU_SOURCE)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    set(corpus ${CMAKE_CURRENT_SOURCE_DIR}/tests/fuzz/corpus/${name})
    set(work ${CMAKE_CURRENT_BINARY_DIR}/fuzz-corpus/${name})
    # new inputs go to a scratch directory first, so the checked-in corpus
    # only changes when someone copies findings back on purpose
    add_test(NAME ${name}
      COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=1
              $<TARGET_FILE:${name}> -max_total_time=${TERN_FUZZ_SECONDS} -timeout=10
              -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/
              ${work} ${corpus})
    set_tests_properties(${name} PROPERTIES TIMEOUT 600 LABELS fuzz
      FIXTURES_REQUIRED ${name}_corpus)
    add_test(NAME ${name}_corpus_setup COMMAND ${CMAKE_COMMAND} -E make_directory ${work})
    set_tests_properties(${name}_corpus_setup PROPERTIES FIXTURES_SETUP ${name}_corpus)
  endforeach()
endif()

# Checks on the shape of the tree and the library (label check): the shared
# library exports exactly the TERN_API functions; no layer includes a header
# from a layer above it; the installed package works from pkg-config and
# find_package.
add_test(NAME check_exports_match_tern_api
  COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/tests/check/exports.py
          --lib $<TARGET_FILE:tern> --include ${CMAKE_CURRENT_SOURCE_DIR}/include)
set_tests_properties(check_exports_match_tern_api PROPERTIES LABELS check TIMEOUT 60)
add_test(NAME check_layers_include_downward
  COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/tests/check/layers.py --root ${CMAKE_CURRENT_SOURCE_DIR})
set_tests_properties(check_layers_include_downward PROPERTIES LABELS check TIMEOUT 60)
# Installs this build into a temporary prefix and builds and runs programs
# against it with pkg-config and with find_package(tern). The programs get
# the sanitizer flags the library was built with (see the script). Serial:
# its compiles would otherwise steal the CPU from the timing checks of the
# unit tests running beside it (unit_rt_test_task's sleep precision).
add_test(NAME check_install_pkgconfig_and_find_package
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/tests/check/install.sh
          --build ${CMAKE_BINARY_DIR} --source ${CMAKE_CURRENT_SOURCE_DIR}
          --cc ${CMAKE_C_COMPILER} --flags "${TERN_SAN_FLAGS_STR}")
set_tests_properties(check_install_pkgconfig_and_find_package PROPERTIES LABELS check TIMEOUT 300
  RUN_SERIAL TRUE)
