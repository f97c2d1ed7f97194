# deploy/ (see deploy/README.md). For prefix /usr: the units in
# /usr/lib/systemd/system, sysusers.d and tmpfiles.d entries in /usr/lib,
# /etc/ringpipe/pipeline.yaml (only if absent; also in share/ringpipe), the
# Prometheus scrape config and rules in share/ringpipe/prometheus.
# The units name the binary, the config and the docs by absolute path. They
# are written at install time, so `cmake --install --prefix P` gets units
# for P (identical to deploy/systemd/ for /usr).
install(CODE "
  set(rp_src \"${CMAKE_CURRENT_SOURCE_DIR}/deploy\")
  set(rp_stage \"${CMAKE_CURRENT_BINARY_DIR}/deploy\")
  set(rp_bindir \"${CMAKE_INSTALL_BINDIR}\")
  set(rp_datadir \"${CMAKE_INSTALL_DATADIR}\")
  set(rp_sysconfdir \"${CMAKE_INSTALL_SYSCONFDIR}\")")
install(CODE [[
  foreach(v bindir datadir)
    if(NOT IS_ABSOLUTE "${rp_${v}}")
      set(rp_${v} "${CMAKE_INSTALL_PREFIX}/${rp_${v}}")
    endif()
  endforeach()
  # GNUInstallDirs' rule: /etc for prefix / or /usr, /etc/opt/X for /opt/X.
  if(NOT IS_ABSOLUTE "${rp_sysconfdir}")
    if(CMAKE_INSTALL_PREFIX MATCHES "^/(usr/?)?$")
      set(rp_sysconfdir "/${rp_sysconfdir}")
    elseif(CMAKE_INSTALL_PREFIX MATCHES "^/opt/(.+)$")
      set(rp_sysconfdir "/${rp_sysconfdir}/opt/${CMAKE_MATCH_1}")
    else()
      set(rp_sysconfdir "${CMAKE_INSTALL_PREFIX}/${rp_sysconfdir}")
    endif()
  endif()
  foreach(unit ringpipe.service ringpipe-component@.service)
    file(READ "${rp_src}/systemd/${unit}" text)
    string(REPLACE "/usr/bin/ringpipe" "${rp_bindir}/ringpipe" text "${text}")
    string(REPLACE "/etc/ringpipe/" "${rp_sysconfdir}/ringpipe/" text "${text}")
    string(REPLACE "/usr/share/ringpipe/" "${rp_datadir}/ringpipe/" text "${text}")
    file(WRITE "${rp_stage}/${unit}" "${text}")
    file(INSTALL "${rp_stage}/${unit}" DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
  endforeach()
  # An operator's pipeline file is never replaced. file(INSTALL) adds DESTDIR itself.
  if(EXISTS "$ENV{DESTDIR}${rp_sysconfdir}/ringpipe/pipeline.yaml")
    message(STATUS "Kept (exists): $ENV{DESTDIR}${rp_sysconfdir}/ringpipe/pipeline.yaml")
  else()
    file(INSTALL "${rp_src}/pipeline.yaml" DESTINATION "${rp_sysconfdir}/ringpipe")
  endif()
]])
install(FILES deploy/ringpipe.sysusers.conf DESTINATION lib/sysusers.d RENAME ringpipe.conf)
install(FILES deploy/ringpipe.tmpfiles.conf DESTINATION lib/tmpfiles.d RENAME ringpipe.conf)
install(FILES deploy/pipeline.yaml DESTINATION ${CMAKE_INSTALL_DATADIR}/ringpipe)
install(FILES deploy/prometheus/prometheus.yml deploy/prometheus/ringpipe.rules.yml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/ringpipe/prometheus)
install(FILES deploy/README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/ringpipe/deploy)
