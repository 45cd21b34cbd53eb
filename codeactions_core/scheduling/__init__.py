"""Schedules: codes and flows fired on a cron expression in a time zone by
``codeactions scheduler`` (see :mod:`codeactions_core.services.schedule_firing`)."""
