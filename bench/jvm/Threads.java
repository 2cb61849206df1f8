import java.util.concurrent.CountDownLatch;

/** Starts 500 threads that each use about 128 KiB of stack and wait; exits 0 when all ran. */
public class Threads {
    static final int COUNT = Integer.getInteger("threads", 500);

    static long recurse(int depth) {
        long[] frame = new long[4];  // keeps each frame's stack slots real
        frame[0] = depth;
        return depth == 0 ? frame[0] : recurse(depth - 1) + frame[0];
    }

    public static void main(String[] args) throws Exception {
        CountDownLatch started = new CountDownLatch(COUNT);
        CountDownLatch release = new CountDownLatch(1);
        for (int i = 0; i < COUNT; i++) {
            Thread t = new Thread(() -> {
                recurse(1500);
                started.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            t.start();
        }
        started.await();
        System.out.println("threads " + COUNT);
        release.countDown();
        System.out.println("done");
    }
}
