"""The playground: a page to write with the model in a browser, served on 127.0.0.1.

server.py serves the page (static/, shipped as package data; no build step, no framework) and a
same-origin proxy to one /score URL; target.py is that URL and the key the proxy adds to each
request, read from an environment variable so that it never reaches the browser.
"""
