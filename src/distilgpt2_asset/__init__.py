"""distilgpt2 as an Azure ML registry model asset: build, register, validate, serve, publish."""
