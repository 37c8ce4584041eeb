"""Everything that talks to Azure: the workspace and sign-in, the registry publish path, online and
batch deployments, autoscale, and how Azure's failures read.

workspace.py makes the clients (one credential, one MLClient factory); registry.py publishes to
an Azure ML registry; endpoints.py and jobs.py are what the notebooks' Azure backend asks of a
workspace; deploy.py plans and submits an online deployment from jobs/deploy/*.yml, with
profile.py (what a deployment does per instance: engine, speed, timeouts) and checks.py (every
refusal before an Azure call); batch.py and autoscale.py do the same for batch endpoints and
autoscale settings; sdk.py holds every call into the SDKs' private modules, so an SDK upgrade
breaks one file; failures.py turns Azure's exceptions into one line that says which case it is.
"""
