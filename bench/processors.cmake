# Included by bench/CMakeLists.txt: include(${CMAKE_CURRENT_LIST_DIR}/processors.cmake)
# The shard benchmark reaches into processors/src for the internal hot path.
add_executable(processors_bench ${CMAKE_CURRENT_LIST_DIR}/processors_bench.cpp)
target_link_libraries(processors_bench PRIVATE ringpipe::processors_internal ringpipe::sample benchmark::benchmark
                      Threads::Threads ringpipe::warnings)

# processor_rss: VmHWM/VmRSS/PSS of a whole processor process holding 1M series.
add_executable(processor_rss ${CMAKE_CURRENT_LIST_DIR}/processor_rss.cpp)
target_link_libraries(processor_rss PRIVATE ringpipe::processors ringpipe::ring ringpipe::sample
                      Threads::Threads ringpipe::warnings)
