"""Domain services: the logic behind the routers and event handlers, composed in stratus.composition."""
