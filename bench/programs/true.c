// The smallest useful program: start, exit 0. Measures start-to-exit cost.
int main(void) { return 0; }
