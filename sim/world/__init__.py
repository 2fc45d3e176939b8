"""The simulated environment: traffic, versions, faults, router, telemetry.

The only package that imports simpy.
"""
