"""The web console (server-rendered pages on the API) and the static assets it and /docs use."""
