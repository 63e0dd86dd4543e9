# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Installation and the deployment files' checks, included by the top-level
# Makefile.
#
#   install    the agent, its config, the systemd unit and the README under
#              $(DESTDIR)$(prefix) and $(DESTDIR)$(sysconfdir); an existing
#              config is kept and the new one installed beside it as
#              kaccess.conf.dist
#   uninstall  removes what install put there, except the config
#
# The DaemonSet (deploy/kaccess-daemonset.yaml) and the image
# (deploy/Containerfile) are checked by selftests/test_manifests.py, which
# `make selftests` copies next to the other selftest binaries.

prefix ?= /usr/local
sysconfdir ?= /etc
systemdunitdir ?= $(prefix)/lib/systemd/system

INSTALL_BIN := $(DESTDIR)$(prefix)/sbin/kaccess
INSTALL_CONF := $(DESTDIR)$(sysconfdir)/kaccess/kaccess.conf
INSTALL_UNIT := $(DESTDIR)$(systemdunitdir)/kaccess.service
INSTALL_DOC := $(DESTDIR)$(prefix)/share/doc/kaccess/README.md

# The unit names the default paths; these rewrite them to the installed ones
# (without DESTDIR: the paths as the installed system sees them).
UNIT_PATHS_SED := -e 's|/usr/local/sbin/kaccess|$(prefix)/sbin/kaccess|g' \
		  -e 's|/etc/kaccess/|$(sysconfdir)/kaccess/|g' \
		  -e 's|/usr/local/share/doc/kaccess/|$(prefix)/share/doc/kaccess/|g'

.PHONY: uninstall

install: $(KACCESS) ## install the agent, config and systemd unit (DESTDIR, prefix)
	$(call msg,INSTALL,$(INSTALL_BIN))
	$(Q)install -D -m 0755 $(KACCESS) $(INSTALL_BIN)
	$(call msg,INSTALL,$(INSTALL_CONF))
	$(Q)if [ -e $(INSTALL_CONF) ]; then \
		install -D -m 0644 config/kaccess.conf $(INSTALL_CONF).dist; \
		echo "  NOTE     kept the existing $(INSTALL_CONF);" \
			"the shipped one is $(INSTALL_CONF).dist"; \
	else \
		install -D -m 0644 config/kaccess.conf $(INSTALL_CONF); \
	fi
	$(call msg,INSTALL,$(INSTALL_UNIT))
	$(Q)install -D -m 0644 deploy/kaccess.service $(INSTALL_UNIT)
	$(Q)sed -i $(UNIT_PATHS_SED) $(INSTALL_UNIT)
	$(call msg,INSTALL,$(INSTALL_DOC))
	$(Q)install -D -m 0644 README.md $(INSTALL_DOC)
	$(Q)[ -n "$(DESTDIR)" ] || echo "  NOTE     start it with: systemctl daemon-reload && systemctl enable --now kaccess"

uninstall: ## remove what install installed, except the config (DESTDIR, prefix)
	$(call msg,RM,$(INSTALL_BIN))
	$(Q)rm -f $(INSTALL_BIN)
	$(call msg,RM,$(INSTALL_UNIT))
	$(Q)rm -f $(INSTALL_UNIT)
	$(call msg,RM,$(INSTALL_DOC))
	$(Q)rm -f $(INSTALL_DOC)
	$(Q)rmdir $(dir $(INSTALL_DOC)) 2>/dev/null || true
	$(Q)echo "  NOTE     kept $(dir $(INSTALL_CONF)) (your config): remove it by hand if unneeded"

# The manifest test is a script: "built" by copying it where run.sh runs
# every $(OUTPUT)/selftests/test_*. The QEMU guests get only the tests built
# from selftests/test_*.c (selftests/vm/mkroot.sh), so it never runs there,
# where there is no python3.
selftests: $(OUTPUT)/selftests/test_manifests

$(OUTPUT)/selftests/test_manifests: selftests/test_manifests.py
	$(call msg,TEST,$@)
	$(Q)install -D -m 0755 $< $@
