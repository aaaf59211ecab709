"""The browser demo: a static page running the exported TFLite model with
LiteRT.js, and the small server that serves it (`python -m mobile_demo.web
serve`)."""
