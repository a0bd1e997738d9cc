"""Host signals: the machine, its GPU, its neighbours, the runtime environment and its baseline."""
