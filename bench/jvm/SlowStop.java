/** Prints "up", then sleeps; its shutdown hook sleeps too, so a SIGTERM does not end it in time. */
public class SlowStop {
    public static void main(String[] args) throws Exception {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                Thread.sleep(60_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "slow-shutdown-hook"));
        System.out.println("up");
        Thread.sleep(600_000);
    }
}
