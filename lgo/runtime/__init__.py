"""Running the daemon as a service: systemd notification, socket activation, supervision."""
