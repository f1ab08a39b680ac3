"""The unit layer: logic without I/O, on injected clocks (gateway.testing's MovedClock,
the plugin's own: ``clock.advance(30)``), in seconds."""
