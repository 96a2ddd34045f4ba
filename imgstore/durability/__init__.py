"""What keeps a recording whole: the frame journal, the writer's lock, recovery and repair."""
