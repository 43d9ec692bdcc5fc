"""Local AWS test bed for mvl-monitor: a patched moto server (server.py), its Logs Insights
evaluator (insights.py) and a multi-account data seeder (seed.py)."""
