"""Run the real azmlinfsrv, bound to a chosen host (127.0.0.1 by default) instead of its fixed 0.0.0.0.

azureml-inference-server-http 1.4.1 hard-codes the bind host (constants.DEFAULT_HOST, copied
into amlserver by `from .constants import *`). Setting it before amlserver is imported is the
only change; everything else is the stock server with the usual azmlinfsrv arguments:

    python -m distilgpt2_asset.local_server --host 127.0.0.1 --entry_script score.py --model_dir DIR --port 5001
"""

from __future__ import annotations

import sys

DEFAULT_HOST = "127.0.0.1"


def main(argv: list[str]) -> None:
    host = DEFAULT_HOST
    if argv[:1] == ["--host"]:
        host, argv = argv[1], argv[2:]
    import azureml_inference_server_http.constants as constants

    constants.DEFAULT_HOST = host
    from azureml_inference_server_http import amlserver

    sys.argv = ["azmlinfsrv", *argv]
    amlserver.run()


if __name__ == "__main__":
    main(sys.argv[1:])
