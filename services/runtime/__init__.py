"""What every service shares at run time: settings, Postgres, Kafka, health, logs, supervision."""
