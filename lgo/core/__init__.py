"""What every part of lgo shares: settings, the exception tree, events, logs, the XML parser."""
