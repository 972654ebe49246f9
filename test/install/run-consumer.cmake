# ctest's install-consumer: install the build, build the consumer against it,
# run it on a CPU bundle. cmake -P with BUILD_DIR, WORK_DIR, SOURCE_DIR, COMPILE.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                COMMAND_ERROR_IS_FATAL ANY OUTPUT_QUIET)
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/build
                -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix COMMAND_ERROR_IS_FATAL ANY OUTPUT_QUIET)
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build COMMAND_ERROR_IS_FATAL ANY OUTPUT_QUIET)
execute_process(COMMAND ${COMPILE} --target cpu --batch ? --seqlen ? --heads 2 --state 16 --headdim 8
                --angles 4 --init -o ${WORK_DIR}/bundle COMMAND_ERROR_IS_FATAL ANY OUTPUT_QUIET)
execute_process(COMMAND ${WORK_DIR}/build/consumer ${WORK_DIR}/bundle COMMAND_ERROR_IS_FATAL ANY)
