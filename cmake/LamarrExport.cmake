# CMake support for lamarr-export: build generated C into shared libraries, and export models at build time.
#
#   include(path/to/lamarr-export/cmake/LamarrExport.cmake)
#   lamarr_export_models(TARGET lamarr_models MANIFEST models.toml [OUTPUT_DIR dir] [TRUST module...]
#                        [ARGS --samples 2000 ...])
#
# lamarr_export_models runs `lamarr-export MANIFEST -o OUTPUT_DIR/TARGET.c` at build time (rerun when the
# manifest or any file it names changes) and makes the shared library TARGET from the generated C, with
# the generated header's folder as its public include directory. The exporter is LAMARR_EXPORT_EXECUTABLE
# (default: `lamarr-export` found on PATH). TRUST names the modules of the manifest's folder that its
# entries may import (their `trust` and `flax` keys): a manifest cannot grant that trust by itself, the
# project that builds it does (`--trust MODULE` on the command line).

cmake_minimum_required(VERSION 3.16)

# The warnings every generated file compiles without (C99); errors, so a regression cannot slip through.
set(LAMARR_EXPORT_C_WARNINGS
    -Wall -Wextra -pedantic-errors -Werror -Wconversion -Wdouble-promotion -Wshadow -Wstrict-prototypes
    -Wmissing-prototypes -Wfloat-equal -Wcast-qual -Wundef -Wvla -Wredundant-decls)
set(LAMARR_EXPORT_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)

# lamarr_export_c_library(TARGET SOURCES...): a shared library of generated C, C99, strict warnings, libm.
function(lamarr_export_c_library target)
    add_library(${target} SHARED ${ARGN})
    set_target_properties(${target} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
    if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
        target_compile_options(${target} PRIVATE ${LAMARR_EXPORT_C_WARNINGS})
    endif()
    target_link_libraries(${target} PRIVATE m)
endfunction()

function(lamarr_export_models)
    cmake_parse_arguments(LEM "" "TARGET;MANIFEST;OUTPUT_DIR" "TRUST;ARGS" ${ARGN})
    if(NOT LEM_TARGET OR NOT LEM_MANIFEST)
        message(FATAL_ERROR "lamarr_export_models: give TARGET name and MANIFEST file.toml")
    endif()
    get_filename_component(manifest "${LEM_MANIFEST}" ABSOLUTE)
    if(NOT EXISTS "${manifest}")
        message(FATAL_ERROR "lamarr_export_models: ${manifest}: no such manifest")
    endif()
    if(NOT LEM_OUTPUT_DIR)
        set(LEM_OUTPUT_DIR "${CMAKE_CURRENT_BINARY_DIR}/${LEM_TARGET}")
    endif()
    if(NOT LAMARR_EXPORT_EXECUTABLE)
        find_program(LAMARR_EXPORT_EXECUTABLE lamarr-export)
        if(NOT LAMARR_EXPORT_EXECUTABLE)
            message(FATAL_ERROR "lamarr_export_models: lamarr-export not found: pip install lamarr-export, "
                                "or set LAMARR_EXPORT_EXECUTABLE")
        endif()
    endif()
    # The files the manifest reads, so that changing any of them reruns the export.
    execute_process(
        COMMAND ${LAMARR_EXPORT_EXECUTABLE} "${manifest}" --depends
        OUTPUT_VARIABLE depends ERROR_VARIABLE error RESULT_VARIABLE status)
    if(NOT status EQUAL 0)
        message(FATAL_ERROR "lamarr_export_models: ${error}")
    endif()
    string(STRIP "${depends}" depends)
    string(REPLACE "\n" ";" depends "${depends}")
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${manifest}")

    set(trust)
    foreach(module IN LISTS LEM_TRUST)
        list(APPEND trust --trust "${module}")
    endforeach()
    set(c_file "${LEM_OUTPUT_DIR}/${LEM_TARGET}.c")
    add_custom_command(
        OUTPUT "${c_file}" "${LEM_OUTPUT_DIR}/${LEM_TARGET}.h" "${LEM_OUTPUT_DIR}/${LEM_TARGET}.ref.txt"
        COMMAND ${LAMARR_EXPORT_EXECUTABLE} "${manifest}" -o "${c_file}" --quiet ${trust} ${LEM_ARGS}
        DEPENDS "${manifest}" ${depends}
        COMMENT "lamarr-export ${LEM_MANIFEST} -> ${LEM_TARGET}.c"
        VERBATIM)
    lamarr_export_c_library(${LEM_TARGET} "${c_file}")
    target_include_directories(${LEM_TARGET} PUBLIC "${LEM_OUTPUT_DIR}")
endfunction()

# lamarr_export_registry(OUTPUT file.cpp REFS a.ref.txt...): a C++ table of every function the reference-rows
# files list, each taken by address through its generated header (so its declared signature is checked), and
# static_asserts that the header's NAME_N_INPUTS, NAME_N_OUTPUTS and NAME_N_RANDOM (a pipeline's noise) or
# NAME_N_NOISE (a generator's) are the reference rows' widths, for the C++ test program (tests/cpp).
function(lamarr_export_registry)
    cmake_parse_arguments(LER "" "OUTPUT" "REFS" ${ARGN})
    set(includes "")
    set(entries "")
    set(checks "")
    foreach(ref IN LISTS LER_REFS)
        get_filename_component(stem "${ref}" NAME)
        string(REGEX REPLACE "\\.ref\\.txt$" ".h" header "${stem}")
        string(APPEND includes "#include \"${header}\"\n")
        file(STRINGS "${ref}" lines REGEX "^function ")
        foreach(line IN LISTS lines)
            string(REPLACE " " ";" fields "${line}")
            list(GET fields 1 name)
            list(GET fields 2 n_in)
            list(GET fields 3 n_out)
            list(GET fields 4 n_noise)
            string(APPEND entries "    lamarr_test::entry(\"${name}\", &${name}, ${n_in}, ${n_out}, ${n_noise}),\n")
            # the header's widths must be the reference rows' (a pipeline's noise is N_RANDOM, a generator's N_NOISE)
            string(APPEND checks
                   "static_assert(${name}_N_INPUTS == ${n_in} && ${name}_N_OUTPUTS == ${n_out}, \"${name}: header widths\");\n"
                   "#if defined(${name}_N_RANDOM)\nstatic_assert(${name}_N_RANDOM == ${n_noise}, \"${name}_N_RANDOM\");\n"
                   "#elif defined(${name}_N_NOISE)\nstatic_assert(${name}_N_NOISE == ${n_noise}, \"${name}_N_NOISE\");\n"
                   "#else\nstatic_assert(${n_noise} == 0, \"${name}: no N_NOISE or N_RANDOM for a generator\");\n#endif\n")
        endforeach()
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${ref}")
    endforeach()
    file(WRITE "${LER_OUTPUT}.tmp"
         "// Generated by lamarr_export_registry from the reference-rows files. Do not edit.\n"
         "#include \"registry.hpp\"\n${includes}\n${checks}\n"
         "const std::vector<lamarr_test::Function> lamarr_test::linked_functions = {\n${entries}};\n")
    configure_file("${LER_OUTPUT}.tmp" "${LER_OUTPUT}" COPYONLY)
endfunction()
