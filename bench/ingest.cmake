# ingest_bench: parser throughput per core (with a memchr line-split baseline
# over the same bytes) and a UDP -> ring load test. Included from
# bench/CMakeLists.txt; not part of the pass/fail suite.
add_executable(ingest_bench ${CMAKE_CURRENT_LIST_DIR}/ingest_bench.cpp)
target_link_libraries(ingest_bench PRIVATE ringpipe::ingest ringpipe::ring ringpipe::sample ringpipe::common
                      Threads::Threads ringpipe::warnings)

# mqtt_bench: MQTT through a real mosquitto broker into a ring, beside a bare
# libmosquitto subscriber on the same stream.
add_executable(mqtt_bench ${CMAKE_CURRENT_LIST_DIR}/mqtt_bench.cpp)
target_include_directories(mqtt_bench PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
target_link_libraries(mqtt_bench PRIVATE ringpipe::ingest ringpipe::ring ringpipe::sample ringpipe::common
                      PkgConfig::MOSQUITTO Threads::Threads ringpipe::warnings)

# remote_write_bench: the remote_write decoder (snappy + protobuf + conversion)
# per core, beside snappy alone and snappy + protobuf parse.
add_executable(remote_write_bench ${CMAKE_CURRENT_LIST_DIR}/remote_write_bench.cpp)
target_link_libraries(remote_write_bench PRIVATE ringpipe::ingest_internal ringpipe::sample ringpipe::prompb
                      Snappy::snappy ringpipe::warnings)
