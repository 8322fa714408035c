"""Past one process on Ray: ``segdeploy serve`` (Ray Serve over HTTP) and ``predict --ray`` (Ray Data).

Ray is imported only inside these modules' functions: ``import segdeploy.serve`` stays light.
"""
