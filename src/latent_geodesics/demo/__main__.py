from latent_geodesics.demo import main

main()
