# Install layout and the Debian package (CPack DEB), for a system install:
# configure with CMAKE_INSTALL_PREFIX=/usr (the "package" preset does), then
# `cpack -G DEB` in the build dir. The unit's ExecStart, the files' places
# and the package's prefix all follow CMAKE_INSTALL_PREFIX, so they agree.

# The unit and the systemd entries.
configure_file(${PROJECT_SOURCE_DIR}/systemd/p2pd.service.in ${PROJECT_BINARY_DIR}/systemd/p2pd.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/systemd/p2pd.service DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/p2pd.sysusers DESTINATION lib/sysusers.d RENAME p2pd.conf)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/p2pd.tmpfiles DESTINATION lib/tmpfiles.d RENAME p2pd.conf)

# The config: every option, commented, at its default.
install(FILES ${PROJECT_SOURCE_DIR}/config/p2pd.conf.example DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/p2pd
        RENAME p2pd.conf)
install(FILES ${PROJECT_SOURCE_DIR}/config/p2pd.conf.example ${PROJECT_SOURCE_DIR}/README.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Man pages, versioned and compressed as Debian wants them.
find_program(GZIP_PROGRAM gzip REQUIRED)
set(P2PD_VERSION ${PROJECT_VERSION})
set(man_pages)
foreach(page p2pd.8 p2pctl.1)
  configure_file(${PROJECT_SOURCE_DIR}/doc/man/${page} ${PROJECT_BINARY_DIR}/man/${page} @ONLY)
  add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/man/${page}.gz
                     COMMAND ${GZIP_PROGRAM} -9nf -k ${PROJECT_BINARY_DIR}/man/${page}
                     DEPENDS ${PROJECT_BINARY_DIR}/man/${page}
                     COMMENT "Compressing the ${page} man page")
  list(APPEND man_pages ${PROJECT_BINARY_DIR}/man/${page}.gz)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  install(FILES ${PROJECT_BINARY_DIR}/man/${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(p2pd_man_pages ALL DEPENDS ${man_pages})

install(FILES ${PROJECT_SOURCE_DIR}/packaging/p2pctl.bash-completion
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME p2pctl)

set(CPACK_PACKAGE_NAME p2pd)
set(CPACK_PACKAGE_VENDOR "p2pd")
set(CPACK_PACKAGE_CONTACT "p2pd maintainers <maintainers@p2pd.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "peer daemon of a volunteer GPU compute pool, and p2pctl")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# systemd-sysusers, systemd-tmpfiles and deb-systemd-helper, used by postinst.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd, init-system-helpers")
# The long description (CPack puts the summary above it and indents it).
set(CPACK_PACKAGE_DESCRIPTION
    "p2pd joins a compute pool with no central server: a Chord ring, a Raft-elected coordinator, replicated job \
data, and shards of matrix jobs run on the GPU or the CPU, every result verified. p2pctl submits and follows jobs \
and shows the pool's membership, ring, leader and causal traces.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/debian/postinst ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
    ${PROJECT_SOURCE_DIR}/packaging/debian/postrm ${PROJECT_SOURCE_DIR}/packaging/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
