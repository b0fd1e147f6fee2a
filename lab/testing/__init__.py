"""Scenario testing with vpnlab: the pytest plugin (fixtures ``lab``, ``lab_runtime``,
``lab_hosts``) and testinfra hosts for lab nodes."""
