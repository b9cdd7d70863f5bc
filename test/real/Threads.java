// Java threads for test/threaded-programs.test.ts: synchronized, a fixed thread pool with futures,
// a blocking queue with a latch, a parallel stream into a ConcurrentHashMap, and a child process.
// Prints only deterministic results.
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

public class Threads {
  static int counter = 0;
  public static void main(String[] args) throws Exception {
    Object lock = new Object();
    Thread[] ts = new Thread[4];
    for (int i = 0; i < ts.length; i++) {
      ts[i] = new Thread(() -> { for (int j = 0; j < 1000; j++) synchronized (lock) { counter++; } });
      ts[i].start();
    }
    for (Thread t : ts) t.join();
    System.out.println("synchronized counter " + counter);

    ExecutorService pool = Executors.newFixedThreadPool(4);
    List<Future<Long>> fs = new ArrayList<>();
    for (int k = 0; k < 8; k++) {
      final int n = k * 1000;
      fs.add(pool.submit(() -> { long s = 0; for (int i = 0; i < n; i++) s += (long) i * i; return s; }));
    }
    StringBuilder sb = new StringBuilder();
    for (Future<Long> f : fs) sb.append(f.get()).append(' ');
    System.out.println("pool " + sb.toString().trim());

    BlockingQueue<Integer> q = new ArrayBlockingQueue<>(4);
    AtomicLong sum = new AtomicLong();
    CountDownLatch done = new CountDownLatch(2);
    for (int c = 0; c < 2; c++) pool.execute(() -> {
      try { for (int x; (x = q.take()) >= 0; ) sum.addAndGet((long) x * x); } catch (InterruptedException e) { }
      done.countDown();
    });
    for (int i = 1; i <= 100; i++) q.put(i);
    q.put(-1); q.put(-1);
    done.await();
    System.out.println("queue " + sum.get());

    ConcurrentHashMap<String, Integer> m = new ConcurrentHashMap<>();
    List<Integer> in = new ArrayList<>();
    for (int i = 0; i < 1000; i++) in.add(i);
    in.parallelStream().forEach(i -> m.merge("k" + (i % 7), i, Integer::sum));
    System.out.println("map " + new TreeMap<>(m));
    // A child process: the JVM posix_spawns jspawnhelper (a vfork child), which execs the command,
    // while the launcher's first thread waits in pthread_join.
    Process child = new ProcessBuilder("/bin/sh", "-c", "echo child $((6 * 7))").redirectErrorStream(true).start();
    String said = new String(child.getInputStream().readAllBytes()).trim();
    System.out.println(said + ", exit " + child.waitFor());
    pool.shutdown();
    System.out.println("terminated " + pool.awaitTermination(60, TimeUnit.SECONDS));
  }
}
