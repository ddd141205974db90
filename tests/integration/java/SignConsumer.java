// SPDX-License-Identifier: Apache-2.0
// Java 17 SunPKCS11 signing with KMS key pairs (docs/SIGNING.md): the
// PKCS11 KeyStore lists each configured key's alias as a PrivateKeyEntry
// whose certificate is the configured one; SHA256withRSA, RSASSA-PSS
// (SHA-256, MGF1 SHA-256, salt 32) and SHA256withECDSA sign with the
// KeyStore's private key through the module, and Java's default providers
// (never SunPKCS11: it is not installed in the Security list) verify with
// the certificate's public key; a flipped bit must fail.
//
// Usage: java SignConsumer CONFIG PIN ALIAS=CERT.pem... (compiled with
// P11Consumer.java, whose ok/FAIL lines it prints)
// (CERT.pem: the certificate file the module was configured with.)
// Prints "ok:" and "FAIL:" lines; exits 1 if any check failed.
import java.io.FileInputStream;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.AlgorithmParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.util.Collections;
import java.util.List;

public class SignConsumer {
    // P11Consumer's report lines and failure count (compiled together).
    static void ok(String s) { P11Consumer.ok(s); }
    static void fail(String s, Throwable t) { P11Consumer.fail(s, t); }
    static void check(boolean cond, String what) { P11Consumer.check(cond, what); }

    /** Sign with the module's key, verify with the default providers. */
    static void signVerify(Provider p, String alg, AlgorithmParameterSpec spec, PrivateKey key,
                           X509Certificate cert) {
        String what = alg + (spec == null ? "" : " (SHA-256, MGF1 SHA-256, salt 32)");
        try {
            byte[] msg = new byte[5000];
            new SecureRandom().nextBytes(msg);
            Signature s = Signature.getInstance(alg, p);
            if (spec != null) s.setParameter(spec);
            s.initSign(key);
            s.update(msg, 0, 1000);           // multi-part
            s.update(msg, 1000, msg.length - 1000);
            byte[] sig = s.sign();
            Signature v = Signature.getInstance(alg);
            if (v.getProvider() == p) throw new IllegalStateException("the verifier is SunPKCS11");
            if (spec != null) v.setParameter(spec);
            v.initVerify(cert.getPublicKey());
            v.update(msg);
            check(v.verify(sig), what + ": signed by " + p.getName() + ", verified by "
                  + v.getProvider().getName() + " with the certificate's public key");
            msg[msg.length / 2] ^= 1;
            v.initVerify(cert.getPublicKey());
            v.update(msg);
            check(!v.verify(sig), what + ": a message with a flipped bit fails to verify");
            msg[msg.length / 2] ^= 1;
            sig[sig.length / 2] ^= 1;
            v.initVerify(cert.getPublicKey());
            v.update(msg);
            boolean bad;
            try { bad = !v.verify(sig); } catch (java.security.SignatureException e) { bad = true; }
            check(bad, what + ": a signature with a flipped bit fails to verify");
        } catch (Exception e) {
            fail(what, e);
        }
    }

    public static void main(String[] args) throws Exception {
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        System.out.println("-- provider " + p.getName() + ": " + p.getInfo());
        KeyStore ks = KeyStore.getInstance("PKCS11", p);
        ks.load(null, args[1].toCharArray());
        List<String> aliases = Collections.list(ks.aliases());
        System.out.println("-- KeyStore aliases: " + aliases);
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        for (int i = 2; i < args.length; i++) {
            String alias = args[i].substring(0, args[i].indexOf('='));
            X509Certificate file;
            try (FileInputStream in = new FileInputStream(args[i].substring(alias.length() + 1))) {
                file = (X509Certificate) cf.generateCertificate(in);
            }
            System.out.println("-- " + alias);
            if (!aliases.contains(alias)) {
                fail("alias " + alias + " is not in the KeyStore", null);
                continue;
            }
            KeyStore.Entry e;
            try {
                e = ks.getEntry(alias, null);
            } catch (Exception x) {
                fail(alias + ": getEntry", x);
                continue;
            }
            if (!(e instanceof KeyStore.PrivateKeyEntry)) {
                fail(alias + " is not a PrivateKeyEntry: " + (e == null ? null : e.getClass()), null);
                continue;
            }
            ok(alias + " is a PrivateKeyEntry");
            KeyStore.PrivateKeyEntry pe = (KeyStore.PrivateKeyEntry) e;
            PrivateKey key = pe.getPrivateKey();
            Certificate c = pe.getCertificate();
            check(c.equals(file), alias + ": the entry's certificate is the configured one");
            X509Certificate cert = (X509Certificate) c;
            check(ks.isKeyEntry(alias) && key.getAlgorithm().equals(cert.getPublicKey().getAlgorithm()),
                  alias + ": a " + key.getAlgorithm() + " key entry");
            if (key.getAlgorithm().equals("RSA")) {
                signVerify(p, "SHA256withRSA", null, key, cert);
                signVerify(p, "RSASSA-PSS", new PSSParameterSpec("SHA-256", "MGF1",
                           MGF1ParameterSpec.SHA256, 32, 1), key, cert);
            } else {
                signVerify(p, "SHA256withECDSA", null, key, cert);
            }
        }
        if (P11Consumer.failures > 0) {
            System.out.println(P11Consumer.failures + " Java check(s) FAILED");
            System.exit(1);
        }
        System.out.println("java signing: all checks passed");
    }
}
