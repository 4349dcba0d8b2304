add_test(NAME readme_examples
  COMMAND ${PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/tests/readme_examples.py
          --readme ${CMAKE_CURRENT_SOURCE_DIR}/README.md
          --include ${CMAKE_CURRENT_SOURCE_DIR}/include
          --lib $<TARGET_FILE:tern_static> --cc ${CMAKE_C_COMPILER}
          --flags "${TERN_SAN_FLAGS_STR}")
set_tests_properties(readme_examples PROPERTIES LABELS unit TIMEOUT 120)
