# Shared by the ofa_bench smoke scripts: runs `${OFA_BENCH} ${SUBCOMMAND} ARGS...`
# and fails unless it exits with `code`; its stdout and stderr are left in
# `out` and `err`.
function(expect_exit code)
  execute_process(COMMAND ${OFA_BENCH} ${SUBCOMMAND} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc STREQUAL "${code}")
    message(FATAL_ERROR "ofa_bench ${SUBCOMMAND} ${ARGN}: exit status ${rc}, expected ${code}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
  set(err "${err}" PARENT_SCOPE)
endfunction()
