# exporters_bench: scrape time and bytes of the pull exporter at 10k..1M
# series beside prometheus-cpp's own Registry with as many Gauges, and
# remote_write samples/s into a local Prometheus beside raw POSTs of the same
# requests. Included from bench/CMakeLists.txt; not part of the pass/fail suite.
add_executable(exporters_bench ${CMAKE_CURRENT_LIST_DIR}/exporters_bench.cpp
               ${PROJECT_SOURCE_DIR}/tests/support/prometheus_server.cpp)
target_include_directories(exporters_bench PRIVATE ${PROJECT_SOURCE_DIR}/tests/support ${PROJECT_SOURCE_DIR}/tests/exporters)
target_link_libraries(exporters_bench PRIVATE ringpipe::exporters_internal ringpipe::processors_engine ringpipe::ring
                      ringpipe::common ringpipe::net prometheus-cpp::core prometheus-cpp::pull Boost::headers Threads::Threads
                      ringpipe::warnings)
