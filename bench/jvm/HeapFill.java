import java.util.ArrayList;
import java.util.List;

/** Fills the heap with 1 MiB arrays until OutOfMemoryError; prints how far it got. */
public class HeapFill {
    public static void main(String[] args) {
        System.out.println("max_heap " + Runtime.getRuntime().maxMemory());
        List<long[]> kept = new ArrayList<>();
        long filled = 0;
        while (true) {
            kept.add(new long[128 * 1024]);
            filled += 1 << 20;
            if (filled % (8 << 20) == 0) {
                System.out.println("filled " + filled);
            }
        }
    }
}
