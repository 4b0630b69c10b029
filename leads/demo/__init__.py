"""The demo company (`manage.py seed_demo`): its data in `data`."""
