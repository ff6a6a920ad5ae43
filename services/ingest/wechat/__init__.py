"""The WeChat official account channel: server URL check, messages (plain and safe mode), OAuth."""
